"""Many runs at once: the grid, the phases, the sweep directory and the engine that trains them in batches."""
