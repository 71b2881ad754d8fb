"""Files the UI loads (styles, demo content); shipped inside the wheel as ``syncapp.assets``."""
