import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, html } from '../../interactions/html.ts';
import { loginPage } from '../../interactions/views/login.ts';

describe('html templates', () => {
  it('escapes every interpolated value', () => {
    const evil = `"><script>alert('x')</script>&\``;
    assert.equal(html`<p title="${evil}">${evil}</p>`.value,
      '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;</p>');
  });

  it('nests fragments without double escaping, and drops null, undefined and false', () => {
    const inner = html`<b>${'a&b'}</b>`;
    assert.equal(html`<p>${inner}${null}${undefined}${false}${[html`<i>1</i>`, '<2>']}</p>`.value, '<p><b>a&amp;b</b><i>1</i>&lt;2&gt;</p>');
  });

  it('renders the login page with user input escaped', () => {
    const page = loginPage({ action: '/interaction/x/login', abortAction: '/interaction/x/abort', csrf: 't', clientName: '<img src=x>', username: '"bob', error: '<b>no</b>' }).value;
    assert.ok(!page.includes('<img src=x>'));
    assert.ok(page.includes('value="&quot;bob"'));
    assert.ok(page.includes('&lt;b&gt;no&lt;/b&gt;'));
    assert.equal(escapeHtml('plain'), 'plain');
  });
});
