"""What the harness and the reference nodes both speak, and neither owns: JSON paths, XML
Signature of SOAP queries, did:web URLs, keys derived from the network seed, verifiable
credentials and presentations as JWTs, Presentation Exchange submissions, and the node
configuration contract. `testbed` and `nodes` import this package and never each other."""
