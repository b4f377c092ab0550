"""grok-tui inside a training framework: a callback over `grok_tui.monitor` for each, an optional extra.

    from grok_tui.integrations.lightning import GrokTuiCallback     # pip install 'grok-tui[lightning]'
    from grok_tui.integrations.huggingface import GrokTuiCallback   # pip install 'grok-tui[huggingface]'

Nothing is imported here: each module imports its framework, and says in one line how to install it.
"""
