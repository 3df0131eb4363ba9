"""Slotguard's own features as plugins: registered through the same pluggy manager as the
policies (slotguard/policies/loading.py, BUILT_IN_FEATURES), each answering the hooks that
let the core leave it unnamed (docs/plugins.md, "Built-in features")."""
