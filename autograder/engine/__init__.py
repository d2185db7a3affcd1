"""The engine: lab and submission specs, the sandbox, the team's service, grading, results,
reports and class runs."""
