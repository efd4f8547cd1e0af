"""takeover's Slack emulator: a Slack workspace in a box, speaking Slack's own wire protocols.

An independent Slack peer for the demo, the tests and load tests: the Web API at /api/<method>,
Socket Mode, RTM, Events API delivery, and an agent console at /_emu/. It shares no code with the
daemon's Slack client (it imports nothing from actors/ or transport/), so testing one against the
other is not circular.

    from emulator import Emulator, EmulatorConfig, AgentSeed
    emu = Emulator(EmulatorConfig(agents=(AgentSeed("alice", "Alice M", "Lead"),)))
    base_url = await nursery.start(emu.run)      # Web API at base_url + "/api/"
    emu.credentials                              # bot_token, app_token, signing_secret, ...
"""

from emulator.app import Emulator
from emulator.config import AgentSeed, ConfigError, Credentials, EmulatorConfig

__all__ = ["AgentSeed", "ConfigError", "Credentials", "Emulator", "EmulatorConfig"]
