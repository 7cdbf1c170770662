"""Online behaviour policies (MATD3) and the collector that turns one run into four dataset levels."""
