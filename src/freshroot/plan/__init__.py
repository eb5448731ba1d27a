"""The spine: steps that inspect a root and yield actions, and the executor that runs them."""
