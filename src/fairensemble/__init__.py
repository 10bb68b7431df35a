"""fairensemble."""
