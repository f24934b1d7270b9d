import Head from 'next/head';
import { AuthForm } from '../components/AuthForm';

export default function RegisterPage() {
  return (
    <>
      <Head>
        <title>Create an account · Parley</title>
      </Head>
      <AuthForm mode="register" />
    </>
  );
}
