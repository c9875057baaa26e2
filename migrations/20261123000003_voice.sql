-- Phone extensions identify agents: a call answered at one is linked to its agent.
CREATE UNIQUE INDEX agents_extension ON agents (extension);
