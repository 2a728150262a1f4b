"""Protocol-faithful fake servers of each repository API, for tests, benchmarks and the demo."""
