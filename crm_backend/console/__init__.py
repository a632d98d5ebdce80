"""The staff console: one page (`/console`) that nurses and service staff use to take over escalated chats."""
