"""Composing and rendering client email: the template contract, rendering, staleness."""
