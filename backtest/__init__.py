"""The squeeze backtester (leveraged perpetual-futures simulation on vectorbt); see ``docs/data.md``. Imported
lazily by its own API route and CLI command only."""
