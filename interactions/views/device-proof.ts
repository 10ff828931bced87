/**
 * The device-key proof field of the sign-in page's forms (interactions/device-key.ts): empty
 * as served; the page's script (assets/device-key.js) fills it with the proof of the nonce
 * and message the attributes carry. Without the script it is posted empty, which the server
 * reads as "no key proven".
 */
import { assetUrl } from '../assets.ts';
import { html, type SafeHtml } from '../html.ts';

export interface DeviceProofView {
  nonce: string;
  /** What the key signs (device-key.ts deviceProofMessage). */
  message: string;
}

export function deviceProofField(p: DeviceProofView | undefined): SafeHtml | '' {
  return p ? html`<input type="hidden" name="device_proof" value="" data-device-nonce="${p.nonce}" data-device-message="${p.message}">` : '';
}

export function deviceKeyScript(p: DeviceProofView | undefined): SafeHtml | '' {
  return p ? html`<script src="${assetUrl('device-key.js')}" defer></script>` : '';
}
