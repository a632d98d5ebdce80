"""CareBridge CRM backend: patient records, conversations and the jobs around them."""
