"""One module per command, named as the command: each takes the site session
(``mirror.keep.site``) and returns a typed result; printing is ``mirror.output``'s.
A stage never opens the state or takes the lock itself."""
