"""How the stack is delivered: the runner its workflows' preview and deploy jobs run on."""
