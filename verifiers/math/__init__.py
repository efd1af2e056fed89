"""Math answer verifier (placeholder until verifiers/math/ lands)."""
