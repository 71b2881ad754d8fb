"""The Textual terminal UI. It imports the engine, never the reverse.

One module per widget group: ``app`` (SyncApp: the engine worker, actions, config saves),
``dashboard`` (the main screen), ``folders`` (folder panels), ``transfers``, ``activity`` (the
activity log and the full log screen), ``detail`` (a folder's paths not in sync, a file's
versions and restore), ``forms`` (add / edit folder), ``remotes`` (remotes screen
and form), ``welcome`` (first run), ``dialogs`` (confirm, delete guard), ``commands`` (palette),
``relay`` (engine events → batched messages). Config edits: the headless ``syncapp.configedit``.
"""
