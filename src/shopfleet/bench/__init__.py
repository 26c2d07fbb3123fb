"""`shopfleet bench`: load tests through the gateway, with a report."""
