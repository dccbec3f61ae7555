"""The squeeze backtester (leveraged perpetual-futures simulation on vectorbt) — see issue 5. Imported
lazily by its own API route and CLI command only."""
