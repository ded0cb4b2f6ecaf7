"""The server-side workflow: user datasets and the one-at-a-time training job."""
