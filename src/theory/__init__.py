"""Pure math of the papers."""
