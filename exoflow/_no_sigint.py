"""Imported first by the embedded cluster's fork server (``forkserver.PRELOAD``): SIGINT ignored
there and in the workers it forks (multiprocessing gives each fork the handler the server found
at its start), since the command catches Ctrl-C and stops them in order. The command starts the
server with SIGINT blocked, so that a Ctrl-C meanwhile waits for the command instead of being
lost; here it is unblocked, ignored."""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
