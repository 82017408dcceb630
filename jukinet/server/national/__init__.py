"""The national tier: relayed change notices from the prefectures, and provision to agencies."""
