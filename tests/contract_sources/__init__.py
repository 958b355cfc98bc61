"""One module per source type: its fixture for the source contract (tests/source_contract.py)."""
