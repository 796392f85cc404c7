"""Performance kernels behind the headline numbers, each beside its plain-pandas reference."""
