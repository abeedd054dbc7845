"""The scenario language: a network, actors, and steps. Each step is one check.

A step either makes an HTTP call to a node (`request`), runs a named high-level action
(`action`) or does something to the network (`fault`: a node stopped, killed, paused, ...;
a link between two nodes, or from the harness to a node, cut, slowed down or made to lose
connections); it states what it expects, captures values for later steps, and names the
requirement ids it verifies. The JSON Schema published for scenario files is generated
from these models."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testbed.scenario.load_settings import LoadSettings

STEP_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"
TESTS = ("equals", "not_equals", "exists", "contains", "matches", "length", "at_least", "one_of")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Request(Strict):
    node: str = Field(description="A node name, or '<actor>.<role>' (e.g. 'requester.trust')")
    api: Literal["public", "internal"] = Field(default="public", description="Which listener of the node")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = Field(
        pattern=r"^(/|\{\{)", description="Path on the node, starting with / (or a placeholder); templated"
    )
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="JSON body; templated")
    form: dict[str, str] | None = Field(default=None, description="Form-encoded body; templated")
    body: str | None = Field(default=None, description="Raw body; templated")
    sign: Literal["xmldsig"] | None = Field(
        default=None,
        description="xmldsig: sign the query in the SOAP Body of the rendered body (XML Signature, enveloped, "
        "exclusive c14n) with the key and certificate the harness presents in mutual TLS",
    )
    client_certificate: Literal["harness", "none"] = Field(
        default="harness",
        description="harness: present the harness's certificate from the network CA in TLS (as every node "
        "does); none: present no client certificate, for checks that a node insists on mutual TLS",
    )
    tamper: dict[str, str] = Field(
        default_factory=dict,
        description="After signing, replace each text with its replacement (both templated): a signed "
        "message changed afterwards. Every text must occur in the signed body",
    )

    @model_validator(mode="after")
    def _one_body(self) -> Request:
        given = [name for name in ("json_body", "form", "body") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError("give at most one of json, form and body")
        if self.sign is not None and self.body is None:
            raise ValueError("'sign' signs a raw 'body': give one")
        if self.tamper and self.sign is None:
            raise ValueError("'tamper' changes a body after signing: give 'sign' too")
        return self


class Action(Strict):
    name: Literal["request-access-token", "wait"] = Field(
        description="request-access-token: the requester's trust node obtains a token from the holder's "
        "authorization server; wait: pause"
    )
    requester: str | None = Field(default=None, description="Actor asking for the token")
    holder: str | None = Field(default=None, description="Actor whose authorization server is asked")
    scope: str | None = None
    token_type: Literal["Bearer", "DPoP"] = Field(default="Bearer", description="DPoP binds the token to a key")
    fresh: bool = Field(default=False, description="Ask for a new token, not one the node cached")
    seconds: float | None = Field(default=None, ge=0, le=60)

    @property
    def token_node(self) -> str:
        """Where `request-access-token` is sent: the requester's trust node."""
        return f"{self.requester}.trust"


NodeOperation = Literal["stop", "start", "kill", "pause", "resume", "restart"]
NODE_OPERATIONS: tuple[NodeOperation, ...] = ("stop", "start", "kill", "pause", "resume", "restart")
LinkOperationName = Literal["cut", "heal", "delay", "lose"]
LINK_OPERATIONS: tuple[LinkOperationName, ...] = ("cut", "heal", "delay", "lose")
# One literal for both kinds: a wrong operation is answered with every operation there is.
FaultOperation = Literal["stop", "start", "kill", "pause", "resume", "restart", "cut", "heal", "delay", "lose"]
HARNESS_END = "harness"  # a link end that is the harness itself (its own requests to a node)
LINK_OPTIONS = ("ms", "ratio", "one_way", "stall")


class Fault(Strict):
    """Something the harness does to the running network between two checks; the run's
    runtime (or, for links, the run's link proxy) carries it out, and every fault still in force
    is undone when the scenario ends. A node fault names `node` and `operation`; a link fault
    names `link` and `operation`; `clear: true` undoes every fault in force."""

    node: str | None = Field(default=None, description="A node name, or '<actor>.<role>' (e.g. 'holder.station')")
    link: tuple[str, str] | None = Field(
        default=None,
        description="The two ends of a link: node names or '<actor>.<role>', or 'harness' for the harness's own "
        "requests to the other end. Without one_way the fault holds both ways",
    )
    operation: FaultOperation | None = Field(
        default=None,
        description="Of a node: stop (SIGTERM, or the runtime's stop), kill (SIGKILL: no clean shut-down), start, "
        "restart; pause (the node takes no new work and reads nothing more, as a stopped process) and resume. "
        "Of a link: cut (new connections refused, open ones closed), heal, delay (each chunk either way waits "
        "`ms`), lose (each connection lost with probability `ratio`)",
    )
    ms: int | None = Field(default=None, ge=1, le=600_000, description="delay: milliseconds each chunk waits")
    ratio: float | None = Field(default=None, gt=0, le=1, description="lose: the share of connections lost")
    one_way: bool = Field(
        default=False, description="A link fault on the connections the first end opens to the second only"
    )
    stall: bool = Field(
        default=False,
        description="cut, lose: leave connections unanswered instead of refusing them (the caller's own time "
        "limit decides, as with dropped packets)",
    )
    clear: bool = Field(
        default=False,
        description="true: start every node stopped or killed, resume every one paused, heal every link faulted",
    )

    @field_validator("link", mode="before")
    @classmethod
    def _two_ends(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) != 2:
            raise ValueError(f"a link has two ends, [a, b]; this one has {len(value)}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Fault:
        if self.clear and (self.node is not None or self.operation is not None):
            raise ValueError("'clear: true' undoes every fault in force: give no node or operation with it")
        if self.clear and (self.link is not None or self._link_options()):
            raise ValueError("'clear: true' undoes every fault in force: give no link or link options with it")
        if self.node is not None and self.link is not None:
            raise ValueError("a fault names a 'node' or a 'link', not both")
        if self.link is not None:
            self._check_link()
        elif not self.clear and (self.node is None or self.operation is None):
            raise ValueError(
                "a fault names a 'node' and an 'operation', or a 'link' and an 'operation' (or is 'clear: true')"
            )
        elif self.operation in LINK_OPERATIONS:
            raise ValueError(f"{self.operation!r} is done to a link: name the 'link' (its two ends), not a node")
        elif self._link_options():
            raise ValueError(f"{', '.join(self._link_options())}: only a link fault takes these")
        return self

    def _link_options(self) -> list[str]:
        return [name for name in LINK_OPTIONS if name in self.model_fields_set]

    def _check_link(self) -> None:
        assert self.link is not None
        operation = self.operation
        if operation is None or operation not in LINK_OPERATIONS:
            said = f"{operation!r} is done to a node" if operation is not None else "no 'operation'"
            raise ValueError(f"a link fault is one of {', '.join(LINK_OPERATIONS)} ({said})")
        first, second = self.link
        if first == second:
            raise ValueError(f"a link joins two different ends, not {first!r} to itself")
        if self.one_way and second == HARNESS_END:
            raise ValueError(
                "one_way faults the connections the first end opens to the second, and nobody connects to the "
                f"harness: name {HARNESS_END!r} first"
            )
        wanted = {"delay": "ms", "lose": "ratio"}.get(operation)
        if wanted is not None and getattr(self, wanted) is None:
            raise ValueError(f"'{operation}' needs '{wanted}'")
        for option, allowed in (("ms", ("delay",)), ("ratio", ("lose",)), ("stall", ("cut", "lose"))):
            if option in self.model_fields_set and operation not in allowed:
                raise ValueError(f"'{option}' goes with {' or '.join(allowed)}, not with '{operation}'")


class JsonExpectation(Strict):
    path: str = Field(
        pattern=r"^(jwt:)?\$",
        description="JSON path into the response body, e.g. $.entry[0].resource.id; "
        "'jwt:$.aud' reads the claims of a JWT the body is",
    )
    equals: Any = None
    not_equals: Any = None
    exists: bool | None = None
    contains: Any = Field(default=None, description="Substring of a string, or member of a list")
    matches: str | None = Field(default=None, description="Regular expression a string value must match")
    length: int | None = Field(default=None, ge=0)
    at_least: float | None = Field(default=None, description="A number at least this large")
    one_of: list[Any] | None = None

    @model_validator(mode="after")
    def _one_test(self) -> JsonExpectation:
        tests = [n for n in TESTS if n in self.model_fields_set]
        if len(tests) != 1:
            raise ValueError("name exactly one of " + ", ".join(TESTS) + "")
        return self

    @cached_property
    def test(self) -> str:
        """The one test this expectation names (looked up once: a load run judges it often)."""
        return next(n for n in TESTS if n in self.model_fields_set)


class Expect(Strict):
    status: int | list[int] | None = Field(default=None, description="Expected HTTP status (or any of a list)")
    json_checks: list[JsonExpectation] = Field(default_factory=list, alias="json")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Header name -> regular expression its value must match"
    )
    body_matches: str | None = Field(default=None, description="Regular expression the raw body must contain")
    tls: Literal["refused"] | None = Field(
        default=None,
        description="refused: the node must end the TLS connection with an alert (e.g. a client certificate "
        "it requires is missing); any HTTP answer fails the check",
    )

    @model_validator(mode="after")
    def _answer_or_refusal(self) -> Expect:
        answered = self.status is not None or self.json_checks or self.headers or self.body_matches is not None
        if self.tls is not None and answered:
            raise ValueError("'tls: refused' expects no HTTP answer: give no status, headers, json or body_matches")
        return self


class Retry(Strict):
    """For what happens in the background (a notification, a synchronisation): the step is
    made again until its expectations hold or the attempts run out."""

    attempts: int = Field(ge=1, le=100)
    interval: float = Field(default=0.2, ge=0, le=10, description="Seconds between attempts")


class Step(Strict):
    id: str = Field(pattern=STEP_ID, description="Unique within the scenario; the check's id in reports")
    title: str = Field(min_length=1)
    requirements: list[str] = Field(min_length=1, description="Requirement ids this step verifies")
    readings: dict[str, str] = Field(
        default_factory=dict,
        description="Requirement id -> the reading this check follows, for a requirement whose sources disagree "
        "(default: the reading the requirement follows)",
    )
    request: Request | None = None
    action: Action | None = None
    fault: Fault | None = Field(
        default=None,
        description="Do something to the network (stop, kill, pause, ... a node; cut, slow down or lose a link); "
        "the check passes once it is done, and records when",
    )
    expect: Expect = Field(default_factory=Expect)
    retry: Retry | None = None
    capture: dict[str, str] = Field(
        default_factory=dict,
        description="Variable -> JSON path into the response body, 'jwt:<path>' into the claims of a JWT body, "
        "'status', or 'header:<name>'",
    )

    @property
    def node_reference(self) -> str | None:
        """Where the step sends ('<actor>.<role>' or a node name): its request's node, or for
        `request-access-token` the requester's trust node; None for a step that sends nothing."""
        if self.request is not None:
            return self.request.node
        if self.action is not None and self.action.name == "request-access-token":
            return self.action.token_node
        return None

    @property
    def body_paths(self) -> list[str]:
        """The paths into the answer's body that judging the step reads: its JSON expectations'
        and its captures' other than `status` and `header:<name>` (`jwt:` ones included)."""
        captured = [s for s in self.capture.values() if s != "status" and not s.startswith("header:")]
        return [check.path for check in self.expect.json_checks] + captured

    @model_validator(mode="after")
    def _request_or_action(self) -> Step:
        given = [name for name in ("request", "action", "fault") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a step has exactly one of 'request' and 'action', or is a 'fault' step")
        if self.fault is not None and ({"expect", "capture", "retry"} & self.model_fields_set):
            raise ValueError("a fault step is done, not judged: give it no 'expect', 'capture' or 'retry'")
        return self


class Scenario(Strict):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Testbed scenario"},
    )

    name: str = Field(pattern=STEP_ID)
    title: str = ""
    description: str = ""
    network: str = Field(description="Network file, relative to this scenario file")
    profile: Literal["trust", "consent", "station", "hdab", "vault"] | None = Field(
        default=None,
        description="The role whose conformance profile this scenario is part of: a run of it reports that "
        "role's requirements and is complete only when every MUST of the role was tested",
    )
    actors: dict[str, str] = Field(default_factory=dict, description="Actor name -> organisation id in the network")
    variables: dict[str, Any] = Field(default_factory=dict, description="Constants steps can template")
    load: LoadSettings | None = Field(default=None, description="Users, shape and thresholds of a load run")
    steps: list[Step] = Field(min_length=1)
