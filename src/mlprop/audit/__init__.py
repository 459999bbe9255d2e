"""Suite-strength audit: the ML fault catalogue, its runner and the kill matrix."""
