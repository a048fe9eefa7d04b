import { Command } from 'commander';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';

type Opts = CloudCallOptions & { json?: boolean };

/** `linesight token`: named operator tokens (create, list, revoke; admin only for changes). */
export function tokenCommand(): Command {
  const token = new Command('token').description(
    'named operator tokens: each change they make is recorded with their actor',
  );
  withCloudCall(
    token
      .command('create')
      .description('create a token for an actor (admin only); the token is printed only this once')
      .argument('<actor>', 'who the token is for: 1-64 of a-z 0-9 _ . @ -')
      .option('--json', 'print JSON'),
  ).action(async (actor: string, opts: Opts) => {
    const created = await (await cloudClient(opts)).api.createToken(actor);
    console.log(opts.json ? JSON.stringify(created) : `${created.actor}: ${created.token}`);
  });
  withCloudCall(
    token
      .command('list')
      .description('list named tokens (never the tokens)')
      .option('--json', 'print JSON'),
  ).action(async (opts: Opts) => {
    const list = await (await cloudClient(opts)).api.listTokens();
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no named tokens');
    else for (const t of list) console.log(`${t.actor}  created ${t.createdAt} by ${t.createdBy}`);
  });
  withCloudCall(
    token
      .command('revoke')
      .description("revoke an actor's token (admin only); it stops working at once")
      .argument('<actor>', 'whose token'),
  ).action(async (actor: string, opts: Opts) => {
    await (await cloudClient(opts)).api.revokeToken(actor);
    console.log(`revoked the token of ${actor}`);
  });
  return token;
}
