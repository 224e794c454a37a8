"""From finished runs to committed lab folders and back: export, reproduce, READMEs."""
