"""Provider adapters: translate between pointsman's OpenAI-shaped calls and one wire format."""

from pointsman.providers.base import ChatCall, ChatResult, Provider, Timeouts, Usage

__all__ = ["ChatCall", "ChatResult", "Provider", "Timeouts", "Usage"]
