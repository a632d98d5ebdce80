"""CareBridge custom actions, one module per feature.

The action server imports this package (``rasa run actions --actions dialogs`` from ``bot/``)
and registers every ``rasa_sdk.Action`` subclass found in its modules.
"""
