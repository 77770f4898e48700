"""graphworks worker side: settings, envelope, runner, dead-letter store, enqueue client, CLI."""
