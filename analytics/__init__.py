"""Analytics: interval energy, rollups, tce and CO₂, intensity against the 2022 base and the 2027 target."""
