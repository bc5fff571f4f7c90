"""Entity links and fraud rings (团伙): entity keys, per-entity state, links, rings and risk propagation."""
