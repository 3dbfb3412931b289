"""The rule language and the rulebooks: the one source of truth for engine and simulator."""
