"""ipywidgets front ends for the lessons: each in its own module, imported on first use.

    ChatPanel               a chat client panel (lesson 08)
    ProducerConsumerDemo    live producer/consumer rates and queue plot (lesson 04)
    ProducerConsumerModel   that demo's model, usable without a browser
    producer_consumer_demo  build and show that demo in one call
    stop_all_demos          stop every running producer/consumer demo
    ServerPanel             the in-kernel servers, with stop buttons and logs (lessons 06-08)
    HintPanel, hint_panel   the staged hints of a lesson's exercises
"""

from importlib import import_module

__all__ = ["ChatPanel", "ProducerConsumerDemo", "ProducerConsumerModel", "producer_consumer_demo",
           "stop_all_demos", "ServerPanel", "HintPanel", "hint_panel"]

_WHERE = {
    "ChatPanel": "chat_panel",
    "ProducerConsumerDemo": "producer_consumer",
    "ProducerConsumerModel": "producer_consumer_model",
    "producer_consumer_demo": "producer_consumer",
    "stop_all_demos": "producer_consumer_model",
    "ServerPanel": "server_panel",
    "HintPanel": "hints",
    "hint_panel": "hints",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
