"""Where WeChat meets CareBridge: webhooks in, delivery out, and a local sandbox."""
