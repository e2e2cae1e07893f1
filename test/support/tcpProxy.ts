/**
 * A TCP proxy on loopback that can stop forwarding: the database "stops answering" without going
 * away (its sockets stay open, bytes sit in buffers), the way a network partition or a stuck server
 * looks to a client. `resume` lets everything held flow again.
 *
 *   const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 })
 *   // connect to 127.0.0.1:proxy.port …
 *   proxy.pause(); …; proxy.resume(); await proxy.close()
 */
import * as net from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly pause: () => void
  readonly resume: () => void
  readonly close: () => Promise<void>
}

export const startTcpProxy = (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> => {
  let paused = false
  const sockets = new Set<net.Socket>()
  const track = (socket: net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => socket.destroy())
    if (paused) socket.pause()
  }
  const server = net.createServer((client) => {
    const upstream = net.connect(target)
    track(client)
    track(upstream)
    client.on("data", (data) => upstream.write(data))
    upstream.on("data", (data) => client.write(data))
    client.on("close", () => upstream.destroy())
    upstream.on("close", () => client.destroy())
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      resolve({
        port: address.port,
        pause: () => {
          paused = true
          for (const s of sockets) s.pause()
        },
        resume: () => {
          paused = false
          for (const s of sockets) s.resume()
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })
}
