// Usage: node send.mjs COLLECTOR_URL WRITE_KEY — sends a small Ecommerce flow and exits when flushed.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 10, flushInterval: 100 })
const errors = []
analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))))

analytics.identify({ userId: 'node-user', anonymousId: 'node-anon', traits: { email: 'node@example.com' }, messageId: 'n-identify' })
analytics.page({ userId: 'node-user', name: 'Home', properties: { url: 'https://shop.example/' }, messageId: 'n-page' })
analytics.track({ userId: 'node-user', event: 'Product Viewed', properties: { product_id: 'p1', price: 12.5 }, messageId: 'n-viewed' })
analytics.track({ userId: 'node-user', event: 'Product Added', properties: { product_id: 'p1', quantity: 2 }, messageId: 'n-added' })
analytics.track({ userId: 'node-user', event: 'Order Completed', properties: { order_id: 'o1', revenue: 25 }, messageId: 'n-order' })
analytics.alias({ previousId: 'node-anon', userId: 'node-user', messageId: 'n-alias' })
await analytics.closeAndFlush({ timeout: 20000 })
if (errors.length) {
  console.error(errors.join('\n'))
  process.exit(1)
}
