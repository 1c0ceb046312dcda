// The peer in bench_webhooks.py: Supabase's Stripe Sync Engine behind a minimal Node http server.
//
//   node sync_engine_server.js migrate   runs the engine's own migrations, then exits
//   node sync_engine_server.js serve     POST /webhooks/stripe -> processWebhook(body, signature)
//
// Everything comes from the environment the benchmark sets: SYNC_ENGINE_DIR (where npm installed
// the package), DATABASE_URL, SYNC_SCHEMA, STRIPE_WEBHOOK_SECRET, PORT, POOL_MAX and
// STRIPE_DEAD_PORT (a local port nothing listens on: the engine's Stripe client is aimed there,
// so any call to Stripe fails instead of leaving the machine).
'use strict'

const http = require('node:http')
const path = require('node:path')
const { createRequire } = require('node:module')

const load = createRequire(path.join(process.env.SYNC_ENGINE_DIR, 'package.json'))
const { StripeSync, runMigrations } = load('@supabase/stripe-sync-engine') // the CommonJS build
const Stripe = load('stripe')

const databaseUrl = process.env.DATABASE_URL
const schema = process.env.SYNC_SCHEMA || 'stripe'

async function migrate() {
  // runMigrations logs its errors and returns normally: collect them to fail loudly.
  const errors = []
  const logger = {
    info() {},
    warn() {},
    error(error, message) {
      errors.push(`${message || ''} ${error && error.message ? error.message : error}`)
    },
  }
  await runMigrations({ databaseUrl, schema, logger })
  if (errors.length) {
    console.error(errors.join('\n'))
    process.exit(1)
  }
}

function serve() {
  const sync = new StripeSync({
    poolConfig: { connectionString: databaseUrl, max: Number(process.env.POOL_MAX || 10) },
    schema,
    stripeSecretKey: 'sk_test_bench_peer',
    stripeWebhookSecret: process.env.STRIPE_WEBHOOK_SECRET,
    revalidateObjectsViaStripeApi: [],
    backfillRelatedEntities: false,
    autoExpandLists: false,
  })
  // 0.48.5 has no option for the API host: it builds `new Stripe(key, {apiVersion, appInfo})`.
  // Replace that client with one aimed at a dead local port (signature checks do not use it).
  sync.stripe = new Stripe('sk_test_bench_peer', {
    host: '127.0.0.1',
    port: Number(process.env.STRIPE_DEAD_PORT),
    protocol: 'http',
    maxNetworkRetries: 0,
    timeout: 1000,
    appInfo: { name: 'Stripe Postgres Sync' },
  })

  let reported = 0
  const server = http.createServer((request, response) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      const signature = request.headers['stripe-signature']
      sync.processWebhook(Buffer.concat(chunks), signature).then(
        () => {
          response.writeHead(200, { 'Content-Type': 'application/json' })
          response.end('{"received":true}')
        },
        (error) => {
          if (signature && reported < 5) {
            reported += 1
            console.error(`sync engine: ${error && error.message ? error.message : error}`)
          }
          response.writeHead(500, { 'Content-Type': 'application/json' })
          response.end('{"error":"webhook failed"}')
        },
      )
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(Number(process.env.PORT), '127.0.0.1')
  const stop = () => server.close(() => sync.postgresClient.close().then(() => process.exit(0)))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

if (process.argv[2] === 'migrate') {
  migrate().catch((error) => {
    console.error(error)
    process.exit(1)
  })
} else {
  serve()
}
