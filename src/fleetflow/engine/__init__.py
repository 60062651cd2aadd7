"""Running flows and tasks in-process: states, retries, timeouts, futures, context, logs, results."""
