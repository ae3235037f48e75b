"""Generated gRPC client modules of the Salesforce Pub/Sub API (``make proto``; do not edit)."""
