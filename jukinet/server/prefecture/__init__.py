"""The prefecture tier: what a prefecture server (or a consolidated centre hosting several) accepts."""
