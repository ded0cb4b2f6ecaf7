"""A simulated Japan (agents with homes, workplaces and schedules) for the demo, tests and
benchmarks. The library never imports it; the CLI's ``demo`` command does."""
