package dev.handoff.coordination;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A TCP relay on loopback in front of each server of an ensemble, through which one holder
 * connects, so that a test can cut that holder (and only it) off: {@link #partition()} silently
 * drops every byte both ways, as a network that loses packets does (the holder's client hears
 * nothing and times out); {@link #dropReplies()} drops only the ensemble's bytes to the holder, so
 * that what the holder sends still reaches the ensemble and is applied there while its answers are
 * lost; {@link #heal()} closes the dead connections and relays again.
 *
 * <p>A direction of a connection that dropped a byte never relays again, not even after
 * {@link #heal()} (which closes it): a client must never read a reply stream with a hole in it.
 */
final class PartitionProxy implements AutoCloseable {
    private final List<ServerSocket> listeners = new ArrayList<>();
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private volatile boolean partitioned;
    private volatile boolean repliesDropped;
    private volatile boolean closed;

    PartitionProxy(List<Integer> serverPorts) throws IOException {
        for (int port : serverPorts) {
            ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            listeners.add(listener);
            Thread acceptor = new Thread(() -> accept(listener, port), "proxy-accept-" + port);
            acceptor.setDaemon(true);
            acceptor.start();
        }
    }

    /** The connect string that goes through the relays. */
    String connectString() {
        StringBuilder b = new StringBuilder();
        for (ServerSocket l : listeners) {
            b.append(b.length() == 0 ? "" : ",").append("127.0.0.1:").append(l.getLocalPort());
        }
        return b.toString();
    }

    void partition() {
        partitioned = true;
    }

    /** From now on the ensemble's bytes to the holder are dropped; the holder's still go through. */
    void dropReplies() {
        repliesDropped = true;
    }

    void heal() {
        partitioned = false;
        repliesDropped = false;
        for (Socket s : open) {
            closeQuietly(s);
        }
    }

    private void accept(ServerSocket listener, int port) {
        while (!closed) {
            Socket client;
            try {
                client = listener.accept();
            } catch (IOException e) {
                return;
            }
            Socket server = new Socket();
            try {
                server.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            } catch (IOException e) {
                closeQuietly(client);
                closeQuietly(server);
                continue;
            }
            open.add(client);
            open.add(server);
            pump(client, server, false);
            pump(server, client, true);
        }
    }

    private void pump(Socket from, Socket to, boolean toClient) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[16384];
            boolean dropping = false; // once a byte is dropped, this direction stays cut
            try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                for (int n; (n = in.read(buf)) >= 0; ) {
                    dropping |= partitioned || toClient && repliesDropped;
                    if (!dropping) {
                        out.write(buf, 0, n);
                        out.flush();
                    }
                }
            } catch (IOException ignored) {
                // one side closed
            } finally {
                closeQuietly(from);
                closeQuietly(to);
                open.remove(from);
                open.remove(to);
            }
        }, toClient ? "proxy-pump-to-client" : "proxy-pump-to-server");
        t.setDaemon(true);
        t.start();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    @Override
    public void close() {
        closed = true;
        for (ServerSocket l : listeners) {
            try {
                l.close();
            } catch (IOException ignored) {
                // closing
            }
        }
        heal();
    }
}
