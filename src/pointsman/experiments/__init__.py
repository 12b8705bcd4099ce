"""Online experiments: router settings compared live on the user's own traffic (sticky
arms, per-arm reports with confidence intervals and a verdict, a quality guardrail)."""
