"""Custom Rasa NLU components for CareBridge, referenced by module path from bot/config.yml.

Rasa imports them at training and at serving time, so ``bot/`` must be on ``sys.path``:
bot/launch.py runs Rasa with ``bot/`` as working directory and on ``PYTHONPATH``.
"""
