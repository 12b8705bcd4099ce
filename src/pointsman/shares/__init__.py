"""Tier-share targets: thresholds that follow the live score distribution so each capped
tier's share of ``auto`` traffic stays at its target (``router.targets``)."""
