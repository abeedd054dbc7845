"""Personal data vault (Solid-pod-like, as in WellData): a citizen's own lifestyle data,
shared with an app only after the citizen approves its access request."""
