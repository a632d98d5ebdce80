"""A local stand-in for the WeChat servers: the fake API, the push builder and the patient simulator."""
